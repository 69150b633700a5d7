"""HTML pages for people: a request, an obligation, my inbox, the reporting calendar, and their forms.

E-mails link to `/requests/{id}` and `/obligations/{id}`. Every page needs a signed-in browser (a session
cookie; without one the login page, which comes back afterwards), and a request or obligation that someone
may not see answers 404 here as it does under /api. The pages run no scripts (see page_kit.HEADERS): people
act through plain forms that post to page routes, which call the same store functions as the API.

- api/page_kit.py: templates, words, headers, rendering, the forms' CSRF door;
- api/page_requests.py: /requests/{id} (+ /act), /inbox (+ /inbox/approve);
- api/page_obligations.py: /obligations/{id} (+ /submit, /late, /waive), /calendar;
- api/page_events.py: /events (上报事件: an event opens its obligations).
"""

from __future__ import annotations

from fastapi import APIRouter

from api import page_events, page_obligations, page_requests
from api.page_kit import HEADERS, templates

__all__ = ["HEADERS", "router", "templates"]

router = APIRouter(include_in_schema=False)
router.include_router(page_requests.router)
router.include_router(page_obligations.router)
router.include_router(page_events.router)
