"""One module per area of the browser, each an ``APIRouter`` that ``browser.main`` includes."""
