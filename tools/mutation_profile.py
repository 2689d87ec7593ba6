"""A hypothesis profile for mutant runs, loaded with ``-p tools.mutation_profile``.

``tools/mutation.py`` runs the tests of one module once per mutant, so each run must take
seconds: fewer examples than the ``dev`` profile, derandomized so that the same mutant gets the
same verdict on every run, no deadline (the machine is shared), no shrinking (a failure is all
we need to know). Select it with ``--hypothesis-profile=mutation``.
"""

from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "mutation",
    deadline=None,
    max_examples=25,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
