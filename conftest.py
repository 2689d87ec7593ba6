"""Project-wide pytest settings: hypothesis profiles.

The machine is shared and noisy, so no example has a deadline; ``ci`` (chosen
when ``CI`` is set) is derandomized so that a CI run is reproducible, and
``full`` (``FIREFLOW_FULL=1``) runs many more examples.  CI does not shrink.
"""

import os

from hypothesis import HealthCheck, Phase, settings

settings.register_profile("dev", deadline=None, max_examples=100)
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=100,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
    # no shrinking in CI: a failure is reported at once (with its blob to replay),
    # so one bad example cannot eat the CI time budget
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
)
settings.register_profile("full", deadline=None, max_examples=2000)
settings.load_profile(
    "full" if os.environ.get("FIREFLOW_FULL") else "ci" if os.environ.get("CI") else "dev"
)
