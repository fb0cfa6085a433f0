"""The parts of the event bridge, one job each; :mod:`osism.services.event_bridge`
puts them together behind the seed's ``EventBridge``.

- :mod:`.wire`: the message on the Redis channel.
- :mod:`.link`: the one Redis client of a bridge and what is known of its health.
- :mod:`.backlog`: events kept, in order, until Redis takes them.
- :mod:`.receivers`: who received what the bridge published, and waiting for them.
- :mod:`.publisher`: publishing an event, or keeping it.
- :mod:`.reconnector`: the thread that reconnects and publishes the backlog.
- :mod:`.subscriber`: the thread that reads the channel, supervised.
- :mod:`.delivery`: handing events to the WebSocket manager; the local queue's thread.
- :mod:`.threads`: how the parts start their threads.
"""
