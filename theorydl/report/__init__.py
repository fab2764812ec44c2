"""Figures and the report: views of the result tables."""
