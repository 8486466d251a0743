using System.Net;
using k8s.Autorest;

namespace Distill.Mesh.Controller.Kubernetes;

/// <summary>The API server's answers the operator treats as outcomes, not failures.</summary>
public static class KubeCalls
{
    /// <summary>The object, or null when the API server says it does not exist.</summary>
    public static async Task<T?> OrNullAsync<T>(Func<Task<T>> call)
        where T : class
    {
        try
        {
            return await call();
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Creates the object; one that already exists (a retried or restarted reconcile created it) is read instead.</summary>
    public static async Task<T> CreateOrGetAsync<T>(Func<Task<T>> create, Func<Task<T>> read)
    {
        try
        {
            return await create();
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            return await read();
        }
    }

    /// <summary>Whether the API server refused a write for a stale resourceVersion (re-read and retry).</summary>
    public static bool IsConflict(Exception e) => e is HttpOperationException { Response.StatusCode: HttpStatusCode.Conflict };

    public static bool IsNotFound(Exception e) => e is HttpOperationException { Response.StatusCode: HttpStatusCode.NotFound };
}
