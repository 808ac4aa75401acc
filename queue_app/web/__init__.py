"""Thin blueprints: parse, authorise, call the domain, render or serialise."""
