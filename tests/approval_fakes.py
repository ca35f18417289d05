"""The approval service's neighbours for fast tests (no deployed account): its DynamoDB table as template.yaml
declares it (reads as consistent as AWS promises, no more), Step Functions' task-token calls and SNS's publish, each
with the boto3 interface."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import ClientError
from botocore.model import ServiceModel, StructureShape
from botocore.validate import validate_parameters

from playbooks import project

TASK_TOKEN = "TOKEN-SECRET"


def create_approvals_table() -> Any:
    """The ApprovalsTable of template.yaml (keys, the sparse reminder index, billing), inside a running moto mock."""
    properties = project.template()["Resources"]["ApprovalsTable"]["Properties"]
    declared = {key: properties[key] for key in ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "BillingMode")}
    return EventuallyConsistent(boto3.resource("dynamodb", region_name="us-east-1").create_table(TableName="approvals", **declared))


def emptied(table: EventuallyConsistent) -> EventuallyConsistent:
    """The same table with no item left and no stale read pending: one table serves a whole test module (creating it
    is most of a fast test's time) while each test starts from nothing."""
    raw = table._table
    page: dict[str, Any] = raw.scan(ProjectionExpression="id")
    with raw.batch_writer() as batch:
        while True:
            for item in page["Items"]:
                batch.delete_item(Key={"id": item["id"]})
            if "LastEvaluatedKey" not in page:
                break
            page = raw.scan(ProjectionExpression="id", ExclusiveStartKey=page["LastEvaluatedKey"])
    return EventuallyConsistent(raw)


class EventuallyConsistent:
    """A DynamoDB table whose GetItem without ConsistentRead answers as AWS may: with the item as it was before its
    latest write ("might not reflect the results of a recently completed write operation"). Everything else passes
    through to moto's table."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self._before: dict[str, dict[str, Any] | None] = {}  # key -> the item before its latest write

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def _write(self, key: dict[str, Any], write: Any, kwargs: dict[str, Any]) -> Any:
        if "ReturnValues" in kwargs:  # the caller's own: the item before is one read more
            before = copy.deepcopy(self._table.get_item(Key=key, ConsistentRead=True).get("Item"))
            answer = write(**kwargs)
        else:  # the write itself answers with the item before (one request, as AWS does with ALL_OLD)
            answer = write(**kwargs, ReturnValues="ALL_OLD")
            before = answer.pop("Attributes", None)
        self._before[key["id"]] = before  # a write refused by its condition raised above: nothing is stale
        return answer

    def put_item(self, **kwargs: Any) -> Any:
        return self._write({"id": kwargs["Item"]["id"]}, self._table.put_item, kwargs)

    def update_item(self, **kwargs: Any) -> Any:
        return self._write(kwargs["Key"], self._table.update_item, kwargs)

    def get_item(self, **kwargs: Any) -> Any:
        if kwargs.get("ConsistentRead") is True or kwargs["Key"]["id"] not in self._before:
            return self._table.get_item(**kwargs)
        stale = self._before[kwargs["Key"]["id"]]
        return {"Item": copy.deepcopy(stale)} if stale is not None else {}


@cache
def _input_shape(service: str, operation: str) -> StructureShape:
    """The operation's request shape in the SDK's own model of the service."""
    model: ServiceModel = boto3.client(service, region_name="us-east-1").meta.service_model  # type: ignore[call-overload]
    shape = model.operation_model(operation).input_shape
    assert shape is not None, operation
    return shape


class FakeSfn:
    """Step Functions' task-token calls, as strict as the service: parameters checked against the SDK's model (its
    required members and length limits: a cause of 32,768 characters at most), a token that is not the waiting
    task's is TaskDoesNotExist; `errors` answer the next calls with those error codes, in order."""

    def __init__(self, errors: list[str] | None = None, tokens: tuple[str, ...] = (TASK_TOKEN,)) -> None:
        self.successes: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self.errors = list(errors or [])
        self.tokens = set(tokens)

    def _answer(self, name: str, params: dict[str, Any]) -> None:
        shape = _input_shape("stepfunctions", name)
        validate_parameters(params, shape)  # botocore's own check: raises ParamValidationError before any request
        for member, value in params.items():
            if isinstance(value, str) and len(value) > shape.members[member].metadata.get("max", len(value)):
                raise ClientError({"Error": {"Code": "ValidationException", "Message": f"{member} too long"}}, name)
        if params["taskToken"] not in self.tokens:
            raise ClientError({"Error": {"Code": "TaskDoesNotExist", "Message": "Task Token does not exist"}}, name)
        if self.errors:
            code = self.errors.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, name)

    def send_task_success(self, **kwargs: Any) -> None:
        self._answer("SendTaskSuccess", kwargs)
        self.successes.append(kwargs)

    def send_task_failure(self, **kwargs: Any) -> None:
        self._answer("SendTaskFailure", kwargs)
        self.failures.append(kwargs)


# SNS's MessageAttributeValue: "Amazon SNS supports the following logical data types: String, String.Array, Number,
# and Binary"; SNS refuses other type prefixes. The stricter reading: case-sensitive.
SNS_DATA_TYPE_PREFIXES = ("String", "Number", "Binary")


class FakeSns:
    """SNS's Publish: parameters checked against the SDK's model and each attribute's data type as SNS checks it, each
    message kept."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> dict[str, str]:
        validate_parameters(kwargs, _input_shape("sns", "Publish"))
        for name, value in kwargs.get("MessageAttributes", {}).items():
            if value["DataType"].split(".")[0] not in SNS_DATA_TYPE_PREFIXES:
                message = f"The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
                raise ClientError({"Error": {"Code": "InvalidParameterValue", "Message": message}}, "Publish")
        self.messages.append(kwargs)
        return {"MessageId": str(len(self.messages))}
