from records._schema import connect, metadata, reset_schema
__all__ = ["connect", "metadata", "reset_schema"]
