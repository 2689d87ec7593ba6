"""The public surface: everything in ``__all__`` exists, is sorted and documented."""

import fireflow


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions
    if name.isupper():
        return (0, name)
    return (1, name) if name[0].isupper() else (2, name)


def test_all_is_sorted_and_resolves():
    names = list(fireflow.__all__)
    assert len(set(names)) == len(names)
    assert names == sorted(names, key=_isort_key)
    for name in fireflow.__all__:
        assert hasattr(fireflow, name), name


def test_public_objects_have_docstrings():
    for name in fireflow.__all__:
        obj = getattr(fireflow, name)
        if callable(obj):
            assert obj.__doc__, name


def test_errors_share_one_root():
    for name in fireflow.__all__:
        obj = getattr(fireflow, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, fireflow.FireflowError), name
