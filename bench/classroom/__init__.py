"""The classroom benchmark (``python -m bench.classroom``): students in Chromium against a real server.
``students``: what each student does and how a step is timed; ``monitors``: the server's CPU and memory;
``report``: the tables; ``__main__``: the server layouts, the class and the command line."""
