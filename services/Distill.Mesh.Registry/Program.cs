using Distill.Mesh.Registry.Extensions;
using Distill.Mesh.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddRegistryService();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapRegistryService();
app.Run();
