s = """never closed
x = 'also not
