"""Read queries planned as one SQL statement whose JSON Postgres builds and we send unchanged.

The ordinary resolver path stays the reference: it validates every new document and answers
everything the planner does not cover, including every error.
"""
