"""The messages the service answers with, word for word where they are known from recordings."""

NOT_FOUND = "Requested entity was not found."
TASK_GONE = (
    "The task no longer exists, though a task with this name existed recently. "
    "The task either successfully completed or was deleted."
)
TASK_TOO_RECENT = "The task cannot be created because a task with this name existed too recently."
TASK_EXISTS = "Requested entity already exists"
QUEUE_EXISTS = "Queue already exists"
QUEUE_MISSING = (
    "Queue does not exist. If you just created the queue, wait at least a minute for the queue to initialize."
)
QUEUE_TOO_RECENT = "The queue cannot be created because a queue with this name existed too recently."
NO_ROUTING = "BufferTask needs queue-level routing: the queue's http_target.uri_override must set a host"
TASK_IN_FLIGHT = "The task is being dispatched; RunTask waits for that attempt to end."
IAM_ETAG_MISMATCH = (
    "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff."
)
"""The wording Google's IAM uses for a stale ``etag`` (not recorded on Cloud Tasks itself)."""
