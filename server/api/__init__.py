"""The REST API (`/api/v1`), its errors and auth; `create_app` composes the server."""
