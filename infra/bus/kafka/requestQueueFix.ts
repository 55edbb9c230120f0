import { createRequire } from 'node:module';

interface RequestQueue {
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  pending: unknown[];
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

const CHECK_PENDING_REQUESTS_INTERVAL_MS = 10;
let fixed = false;

/**
 * kafkajs 2.2.4 (unmaintained) re-arms a timer every millisecond on every broker connection even when
 * nothing waits: with nothing pending and no throttle, its delay is `-1 - Date.now()`, which Node clamps
 * to 1 ms and, from Node 24 on, warns about (TimeoutNegativeWarning) — tulios/kafkajs#1704 and #1751.
 * This schedules the check only when a request is pending or the broker throttles, as the open fixes
 * (tulios/kafkajs#1768) do. Pending requests are still checked each time one in flight completes.
 */
export const fixKafkaRequestQueue = (): void => {
  if (fixed) return;
  fixed = true;
  const require = createRequire(import.meta.url);
  const RequestQueueClass = require('kafkajs/src/network/requestQueue/index.js') as {
    prototype: RequestQueue;
  };
  RequestQueueClass.prototype.scheduleCheckPendingRequests = function scheduleCheckPendingRequests(this: RequestQueue) {
    if (this.throttleCheckTimeoutId) return;
    const untilUnthrottled = this.throttledUntil - Date.now();
    if (this.pending.length === 0 && untilUnthrottled <= 0) return;
    const delay = untilUnthrottled > 0 ? untilUnthrottled : CHECK_PENDING_REQUESTS_INTERVAL_MS;
    this.throttleCheckTimeoutId = setTimeout(() => {
      this.throttleCheckTimeoutId = null;
      this.checkPendingRequests();
    }, delay);
  };
};
