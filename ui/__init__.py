"""App-side helpers shared by the pages: cached readers keyed on the database path and the
sidebar. Like the pages, they call synthmed_core and jobs only (no SQL, no torch)."""
