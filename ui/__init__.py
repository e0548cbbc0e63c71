"""Streamlit-side helpers: at the top, what every page uses (the sidebar, translations, charts, the shared
result store, the exercise block); in a folder named after a page, what serves that page alone."""

import os

# Before torch is first imported (every page imports ui.sidebar first): OpenMP threads that wait
# sleep instead of spinning. With the default (spinning), a 2-thread network call on a 2-core
# machine that is busy with anything else (another student's run, a training job) is 10 to 30
# times slower; ui/model.py fixes the thread counts themselves.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
