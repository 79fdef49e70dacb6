"""``python -m ministry.admin``: the ``ministry-admin`` command, as the tests run it."""

from ministry.admin import main

main()
