total = 1 + \
    2 + \
    3
items = [
    1,  # one

    2,
]
if total:
	pass
class C:
    x: int = 0

    async def g(self):
        await self.h()
