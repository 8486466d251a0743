using System.Net;

namespace Distill.Mesh.Testing.Kubernetes;

/// <summary>Failures a test asked for: the next matching calls answer with the given status instead of being served.</summary>
internal sealed class FailureInjector
{
    private readonly object _gate = new();
    private readonly List<Rule> _rules = [];

    /// <param name="verb">An RBAC verb ("update", "patch", "watch"...).</param>
    /// <param name="resource">"pods" for the main resource, "pods/status" for a subresource.</param>
    public void Add(string verb, string resource, HttpStatusCode status, int times)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(times, 1);
        lock (_gate)
            _rules.Add(new Rule(verb, resource, status) { Remaining = times });
    }

    /// <summary>The status to fail this call with, consuming one use of the first matching rule; null to serve it.</summary>
    public HttpStatusCode? Take(ApiCall call)
    {
        lock (_gate)
        {
            var rule = _rules.FirstOrDefault(r => r.Verb == call.Verb && r.Resource == call.RbacResource);
            if (rule is null)
                return null;
            if (--rule.Remaining == 0)
                _rules.Remove(rule);
            return rule.Status;
        }
    }

    private sealed record Rule(string Verb, string Resource, HttpStatusCode Status)
    {
        public int Remaining { get; set; }
    }
}
