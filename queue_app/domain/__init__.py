"""Domain logic: plain functions over a SQLAlchemy session, no Flask requests inside."""
