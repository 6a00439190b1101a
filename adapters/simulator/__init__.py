"""A simulator of city command centres: they report incidents and answer their tasks."""
