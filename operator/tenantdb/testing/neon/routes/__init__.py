"""The API's routes, one module per resource family; paths are below ``/api/v2``."""
