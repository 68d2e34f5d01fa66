"""budgetbench's tasks: one sub-package per task, each with its reference methods.

`tasks.base` holds the contracts every task and method follows. Task modules must not import
torch at import time: the CLI lists tasks without paying for it.
"""
