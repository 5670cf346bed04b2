"""wastesort web app: `python app.py` (also what Hugging Face Spaces runs).

Settings come from WASTESORT_* environment variables (see README); by default the app
serves the champion model from exports/ in-process, on http://127.0.0.1:7860.
"""

from wastesort.ui import launch

if __name__ == "__main__":
    launch()
