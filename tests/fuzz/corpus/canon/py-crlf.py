import json
print(1)
# c
