"""The channel layer is channels-redis on the real Redis: point-to-point and group round trips."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer


def test_channel_layer_is_redis():
    assert isinstance(get_channel_layer(), RedisChannelLayer)


def test_channel_layer_send_and_group_round_trip():
    async def round_trip():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "probe.direct", "n": 1})
        direct = await layer.receive(channel)
        await layer.group_add("probe-group", channel)
        await layer.group_send("probe-group", {"type": "probe.group", "text": "안녕"})
        grouped = await layer.receive(channel)
        await layer.group_discard("probe-group", channel)
        await layer.flush()
        return direct, grouped

    direct, grouped = async_to_sync(round_trip)()
    assert direct == {"type": "probe.direct", "n": 1}
    assert grouped == {"type": "probe.group", "text": "안녕"}
