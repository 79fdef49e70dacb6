"""The read model: snapshots of the store and rendered pages, kept until they change."""
