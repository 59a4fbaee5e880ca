"""The HDL writer: weight ROMs, network package, top, AXI4-Stream top, memory files.

``sources.py`` owns the list of hand-written RTL units in compile order (a new unit is
named there once); ``generate.py`` renders the templates of ``templates/``.

May import: gen.core, gen.data
"""
