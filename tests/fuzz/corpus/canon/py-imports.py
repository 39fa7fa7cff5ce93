#!/usr/bin/env python3
"""Module docstring: dropped by the canonical form."""
import os, sys as system
from . import sibling
from ..pkg.sub import (a,
    b as c)  # trailing comment
from x.y import *
import a.b.c

def f(x):
    '''docstring'''
    return x  # comment
