// Socket receive timestamps: when an answer's bytes reached the kernel, so a
// client may handle them later (at the loop's next wake-up, see
// EventLoop::Wake::kBatched) and still date the response exactly.
//
// Free functions, any thread; the clients call them on the loop thread.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <cstddef>
#include <optional>

#include "exporters/clock.h"

namespace polar {

// Asks the kernel to stamp what `fd` receives (SO_TIMESTAMPNS).
void EnableReceiveTimestamps(int fd);

// recv() that also returns the kernel's wall-clock receive time of the newest
// bytes read, when the socket gave one (TCP reports the last segment's).
ssize_t ReceiveStamped(int fd, char* buffer, std::size_t size,
                       std::optional<timespec>* stamp);

// When bytes stamped `stamp` reached the kernel, on `clock`'s monotonic scale:
// now minus their age, taken from the wall clock the kernel stamps with (a
// step of the wall clock in between moves it by the step, never past now).
// Now when there is no stamp.
MonoTime ArrivalTime(const Clock& clock, const std::optional<timespec>& stamp);

}  // namespace polar
