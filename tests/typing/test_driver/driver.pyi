from typing import Any

class Driver:
    def __getattr__(self, name: str) -> Any: ...
