"""The lifecycle's safety invariants, driven by the public state machine.

Our own suite uses :class:`fireflow.testing.machine.TicketMachine`, the same
machine users subclass for their plans: one ticket, commands from many actors,
the invariants checked after every step (nothing filed without an independent
multi-agency re-check and a photo, no demolition without certification, a
deadline whenever rectification runs, escalations with targets, fold == state,
the live machine agreeing with the compiled table).
"""

from hypothesis import settings

from fireflow.testing.machine import TicketMachine


class ChangleMachine(TicketMachine):
    """The built-in Changle 2022 plan."""


ChangleMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=40)
TestTicketMachine = ChangleMachine.TestCase
