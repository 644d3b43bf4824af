"""Page numbers as the API reads them: ASCII digits only.

int() takes any Unicode digit ('٣' is 3) and str.isdigit() takes more than int() does ('²'), so
a page number is checked here, in the one paginator every list uses, and refused with a 400 that
names `page` instead of being read one way here and another way elsewhere."""
import re

from rest_framework import pagination
from rest_framework.exceptions import ValidationError

ASCII_WHOLE_NUMBER = re.compile(r"[0-9]{1,19}\Z", re.ASCII)


class PageNumberPagination(pagination.PageNumberPagination):
    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and raw not in self.last_page_strings and not ASCII_WHOLE_NUMBER.match(raw):
            raise ValidationError({self.page_query_param: ["must be a whole number written with the digits 0-9"]})
        return super().get_page_number(request, paginator)
