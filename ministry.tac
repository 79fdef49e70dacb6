"""``twistd -ny ministry.tac``: the same service as ``twistd ministry``.

Options come from the MINISTRY_OPTIONS environment variable, written as on
the command line, e.g. MINISTRY_OPTIONS="--port 8080 --data-dir /srv/ministry".
"""

import os
import shlex

from twisted.application.service import Application

from ministry.tap import main_options, makeService

application = Application("ministry")
makeService(main_options(shlex.split(os.environ.get("MINISTRY_OPTIONS", "")))).setServiceParent(
    application
)
