"""All models of the zoo. Importing this package registers each one by name."""
from keraszoo.models import classical  # noqa: F401
from keraszoo.models import gain  # noqa: F401
from keraszoo.models import g2lgn  # noqa: F401
from keraszoo.models import misgan  # noqa: F401
from keraszoo.models import gamin  # noqa: F401
from keraszoo.models import miwae  # noqa: F401
from keraszoo.models import notmiwae  # noqa: F401
