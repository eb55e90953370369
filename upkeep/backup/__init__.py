"""MongoDB backups in S3: manifest, dump, store, verification, retention (no Prefect here)."""
