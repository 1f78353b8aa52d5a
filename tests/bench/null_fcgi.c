/*
 * null_fcgi.c - the web stack's ceiling for `make bench`: a FastCGI responder
 * that reads the body and answers 200 EVENT_RECEIVED, with no signature, no
 * parse and no database. Behind the same nginx as wahook.fcgi, it measures
 * what nginx + FastCGI + wrk cost on this machine by themselves.
 */
#include <string.h>

#include <fcgiapp.h>

int
main(void)
{
	static const char head[] = "Status: 200 OK\r\nContent-Type: text/plain; "
	    "charset=utf-8\r\nContent-Length: 14\r\n\r\nEVENT_RECEIVED";
	char buf[65536];
	FCGX_Request rq;

	if (FCGX_Init() != 0 || FCGX_InitRequest(&rq, 0, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&rq) >= 0) {
		/* drain the body as the real responder does, so the bytes are paid for */
		while (FCGX_GetStr(buf, (int)sizeof(buf), rq.in) > 0)
			;
		FCGX_PutStr(head, (int)strlen(head), rq.out);
		FCGX_Finish_r(&rq);
	}
	FCGX_Free(&rq, 1);
	return 0;
}
