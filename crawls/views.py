from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from crawls import selectors


@login_required
def home(request):
    workspaces = selectors.workspace_list_for_user(user=request.user)
    return render(request, "home.html", {"workspaces": workspaces})
