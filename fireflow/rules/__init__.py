"""The campaign's rules, driven by plan data; every answer carries its rule ids.

* :mod:`fireflow.plan.routing` (formerly here): who rectifies, leads, re-checks and enforces;
* :mod:`fireflow.rules.authority`: who may fire which trigger;
* :mod:`fireflow.rules.duties`: who owes which step of a ticket, by when (五(三));
* :mod:`fireflow.rules.escalation`: which escalations are due at a moment;
* :mod:`fireflow.rules.accountability`: accountability across tickets (隐瞒不报, 六(四));
* :mod:`fireflow.rules.explain`: a ticket's history in plain Chinese and English;
* :mod:`fireflow.rules.spotcheck`: the publicly verifiable "双随机、一公开" draw;
* :mod:`fireflow.rules.reporting`: report obligations per town, who must send them, their status;
* :mod:`fireflow.rules.obligations`: the phase duties (五(一)-(五), 六(五)-(六)) as obligations.
"""
