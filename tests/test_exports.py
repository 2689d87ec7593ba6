"""The public surface: everything in ``__all__`` exists, is sorted and documented."""

import fireflow


def test_all_is_sorted_and_resolves():
    names = [n for n in fireflow.__all__ if n != "__version__"]
    assert names == sorted(names)
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
