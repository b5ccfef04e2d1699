"""One Alembic revision per schema version: `000N` brings an archive to SCHEMA_VERSION N."""
