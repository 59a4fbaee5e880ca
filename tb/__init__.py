"""The benches and the simulation path: cocotb benches per unit (``tb/<unit>/``) on one
harness (``bench``, with ``selftest`` and ``unitwrap``), the whole-network run
(``netsim``), the regression, the shared monitor (``netcheck``), fault injection
(``faults``), coverage bins (``coverage``) and the mutants (``mutants/``).

May import: gen.core, gen.data, gen.hdl, gen.eda
"""
