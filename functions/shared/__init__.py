"""Code shared by the playbooks' Lambda handlers. Deployed; never imports the tooling package or moto."""
