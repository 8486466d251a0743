using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Recipes;

/// <summary>
/// Where a training step's time went, by <see cref="StepPhase"/>. Only a caller that asks gets it
/// (`distill bench train`); a step without one measures nothing. On CUDA each boundary waits for
/// the device, so the phases hold the kernels they launched (and the step runs a little slower).
/// </summary>
public sealed class StepTimings
{
    private readonly double[] _seconds = new double[Enum.GetValues<StepPhase>().Length];

    /// <summary>Seconds spent in <paramref name="phase"/> so far.</summary>
    public double this[StepPhase phase] => _seconds[(int)phase];

    /// <summary>All phases together.</summary>
    public double Total => _seconds.Sum();

    /// <summary>Adds <paramref name="seconds"/> to <paramref name="phase"/> (negative: time another phase claims from inside it).</summary>
    public void Add(StepPhase phase, double seconds) => _seconds[(int)phase] += seconds;

    /// <summary>Runs <paramref name="work"/> and books its time to <paramref name="phase"/>; a null <paramref name="timings"/> only runs it.</summary>
    public static T Time<T>(StepTimings? timings, Device device, StepPhase phase, Func<T> work)
    {
        if (timings is null)
            return work();
        var clock = new Clock(timings, device);
        var result = work();
        clock.Lap(phase);
        return result;
    }

    /// <summary>Books the time since the previous lap to a phase; with no timings every call returns at once.</summary>
    internal struct Clock(StepTimings? timings, Device device)
    {
        private long _since = timings is null ? 0 : Now(device);

        /// <summary>The seconds booked (0 without timings).</summary>
        public double Lap(StepPhase phase)
        {
            if (timings is null)
                return 0;
            var now = Now(device);
            var seconds = Stopwatch.GetElapsedTime(_since, now).TotalSeconds;
            timings.Add(phase, seconds);
            _since = now;
            return seconds;
        }

        private static long Now(Device device)
        {
            if (device.type == DeviceType.CUDA)
                cuda.synchronize(device);
            return Stopwatch.GetTimestamp();
        }
    }
}
