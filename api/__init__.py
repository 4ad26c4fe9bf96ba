"""The FastAPI service: checkout, webhooks, orders, provisioning."""
