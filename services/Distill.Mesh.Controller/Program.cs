using Distill.Mesh.Controller.Extensions;
using Distill.Mesh.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddControllerService();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapControllerService();
app.Run();
