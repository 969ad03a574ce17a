"""Game days: plans run on schedules. Today: the scheduler core and its renderings
(crontab, systemd timer, Kubernetes CronJob); plans and ``gameday run`` come later."""
