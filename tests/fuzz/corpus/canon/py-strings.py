#!/usr/bin/python3 -u
s = "double \"quoted\" # not a comment"
t = 'single \'quoted\''
u = """triple
# still the string
"""
v = r'raw \d+' + b"bytes" + rb'\x00'
w = f"{s!r:>10} {t + 'x'} {{literal}}"
x = F'''{u}
{v}'''
