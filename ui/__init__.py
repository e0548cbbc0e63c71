"""Streamlit-side helpers: at the top, what every page uses (the sidebar, translations, charts, the shared
result store, the exercise block); in a folder named after a page, what serves that page alone."""

import os

# Before torch is first imported (every page imports ui.sidebar first): OpenMP threads that wait
# sleep instead of spinning. With the default (spinning), a 2-thread network call on a 2-core
# machine that is busy with anything else (another student's run, a training job) is 10 to 30
# times slower; ui/model.py fixes the thread counts themselves.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# pandas, imported here once under this package's import lock: Streamlit imports it lazily (st.table,
# st.dataframe), and two sessions opening their first pages at the same moment on a cold server could import it
# from two script threads at once, one of them getting the half-initialised module ("partially initialized
# module 'pandas' has no attribute 'Series"; seen by bench/protocol with --no-warm-up).
import pandas  # noqa: E402, F401
