"""Scheduled maintenance (APScheduler 3.x) with one leader (a lease in the database): pruning and backups
(``scheduler.jobs``); every run recorded in ``scheduler_runs``. Embedded mode runs it inside the web
process; scaled out it is ``python -m scheduler`` (start one or two: only the lease holder runs jobs)."""
