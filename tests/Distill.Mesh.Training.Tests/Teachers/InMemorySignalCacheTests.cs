using Distill.Mesh.Training.Teachers;

namespace Distill.Mesh.Training.Tests.Teachers;

public sealed class InMemorySignalCacheTests
{
    private static EncodedSignal Signal(int bytes) =>
        new(false, 1, 1, 8, new byte[bytes], SignalPrecision.Fp32, [], [], [], []);

    [Fact]
    public async Task Small_entries_are_charged_their_keys_and_index_too_so_the_total_stays_under_the_capacity()
    {
        const long capacity = 64 << 10;
        var cache = new InMemorySignalCache(capacity);
        var serialized = EncodedSignalSerializer.ToBytes(Signal(16)).Length;
        var key = new string('a', 64);

        for (var i = 0; i < 10_000; i++)
            await cache.SetAsync($"{i:D8}{key[8..]}", Signal(16), default);

        var perEntry = InMemorySignalCache.Footprint(key, serialized);
        // Values alone would have let 64 KiB / (value bytes) entries in: over twice as many as now fit.
        Assert.True(perEntry > 2 * serialized, $"entry {perEntry} B, value {serialized} B");
        Assert.InRange(cache.Bytes, capacity - perEntry, capacity);
        var kept = 0;
        for (var i = 0; i < 10_000; i++)
            kept += await cache.GetAsync($"{i:D8}{key[8..]}", default) is null ? 0 : 1;
        Assert.Equal(capacity / perEntry, kept);
        // The newest entries are the ones kept.
        Assert.NotNull(await cache.GetAsync($"{9_999:D8}{key[8..]}", default));
        Assert.Null(await cache.GetAsync($"{0:D8}{key[8..]}", default));
    }

    [Fact]
    public async Task Replacing_an_entry_charges_it_once()
    {
        var cache = new InMemorySignalCache(1 << 20);
        await cache.SetAsync("k", Signal(100), default);
        var once = cache.Bytes;
        await cache.SetAsync("k", Signal(100), default);

        Assert.Equal(once, cache.Bytes);
        Assert.Equal(InMemorySignalCache.Footprint("k", EncodedSignalSerializer.ToBytes(Signal(100)).Length), once);
    }
}
